import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  // public/assets/qrcode.js is qrcode-generator's file, vendored as is (test/api/admin.test.ts keeps it identical).
  { ignores: ["node_modules/", ".vercel/", "coverage/", "test/artifacts/", "public/assets/qrcode.js"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/consistent-type-imports": "error",
      // Async functions that return without awaiting are how fakes mirror async interfaces.
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-properties": [
        "error",
        { object: "process", property: "env", message: "Only lib/config.ts reads process.env." },
      ],
    },
  },
  {
    files: ["lib/config.ts", "scripts/**", "local/**", "test/**", "vitest.config.ts"],
    rules: { "no-restricted-properties": "off" },
  },
  { files: ["eslint.config.js"], ...tseslint.configs.disableTypeChecked },
  {
    // The join page's and the dashboard's browser scripts: plain JS, no build step, served as is.
    files: ["public/**/*.js"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: "script",
      globals: { window: "readonly", document: "readonly", fetch: "readonly", Event: "readonly", TextEncoder: "readonly", Blob: "readonly", URL: "readonly", setTimeout: "readonly", clearTimeout: "readonly", location: "readonly", confirm: "readonly", navigator: "readonly" },
    },
  },
);
