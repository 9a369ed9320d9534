import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import solc from "solc";
import { createPublicClient, createWalletClient, defineChain, http, type Abi, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { freePort } from "../../local/redis/redis-server.js";

/** Anvil's first well-known account. */
export const DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80" as const;

/** The contract sources compiled when none are named. */
export const DEFAULT_SOURCES = ["GatingFixtures.sol"] as const;

/**
 * Compiles .sol files of test/contracts with the solc npm package, in one compiler run.
 * @param sources file names under test/contracts (GatingFixtures.sol by default).
 * @returns every contract by name.
 * @throws {Error} on a compile error, or when two files define a contract of the same name.
 */
export function compileFixtures(sources: readonly string[] = DEFAULT_SOURCES): Record<string, { abi: Abi; bytecode: Hex }> {
  const input = {
    language: "Solidity",
    sources: Object.fromEntries(sources.map((file) => [file, { content: readFileSync(join(import.meta.dirname, "..", "contracts", file), "utf8") }])),
    settings: { optimizer: { enabled: true, runs: 200 }, outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
  };
  // solc ships without types.
  const compile = (solc as { compile: (input: string) => string }).compile;
  const output = JSON.parse(compile(JSON.stringify(input))) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>;
  };
  const errors = output.errors?.filter((e) => e.severity === "error") ?? [];
  if (errors.length) throw new Error(errors.map((e) => e.formattedMessage).join("\n"));
  const contracts: Record<string, { abi: Abi; bytecode: Hex }> = {};
  for (const file of sources) {
    for (const [name, c] of Object.entries(output.contracts[file] ?? {})) {
      if (contracts[name]) throw new Error(`contract ${name} is defined in more than one of ${sources.join(", ")}`);
      contracts[name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
    }
  }
  return contracts;
}

/** A running anvil with the test contracts compiled and a deployer ready. */
export interface LocalChain {
  readonly url: string;
  readonly chainId: number;
  readonly contracts: Record<string, { abi: Abi; bytecode: Hex }>;
  deploy(name: string, args?: readonly unknown[]): Promise<Address>;
  write(address: Address, name: string, functionName: string, args: readonly unknown[]): Promise<void>;
  /** Puts a fixture's runtime code at a fixed address (the real POAP address, say). */
  placeAt(address: Address, name: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts anvil (from @foundry-rs/anvil) on a free port with the given chain id.
 * @param options.sources the .sol files of test/contracts to compile (GatingFixtures.sol by default).
 * @throws {Error} when anvil does not start or a source does not compile.
 */
export async function startLocalChain(chainId = 100, options: { sources?: readonly string[] } = {}): Promise<LocalChain> {
  const port = await freePort();
  const bin = join(process.cwd(), "node_modules", ".bin", "anvil");
  const child: ChildProcess = spawn(bin, ["--port", String(port), "--chain-id", String(chainId), "--silent"], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  const chain = defineChain({ id: chainId, name: "anvil", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [url] } } });
  const publicClient = createPublicClient({ chain, transport: http(url) });
  const wallet = createWalletClient({ chain, transport: http(url), account: privateKeyToAccount(DEPLOYER_KEY) });
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await publicClient.getChainId()) === chainId) break;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error("anvil did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const contracts = compileFixtures(options.sources);
  const fixture = (name: string) => {
    const c = contracts[name];
    if (!c) throw new Error(`no fixture ${name}`);
    return c;
  };
  const deploy = async (name: string, args: readonly unknown[] = []): Promise<Address> => {
    const { abi, bytecode } = fixture(name);
    const hash = await wallet.deployContract({ abi, bytecode, args: [...args] });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    return receipt.contractAddress!;
  };
  return {
    url,
    chainId,
    contracts,
    deploy,
    async write(address, name, functionName, args) {
      const hash = await wallet.writeContract({ address, abi: fixture(name).abi, functionName, args: [...args] });
      await publicClient.waitForTransactionReceipt({ hash });
    },
    async placeAt(address, name) {
      const temp = await deploy(name);
      const code = await publicClient.getCode({ address: temp });
      await publicClient.request({ method: "anvil_setCode" as never, params: [address, code] as never });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
