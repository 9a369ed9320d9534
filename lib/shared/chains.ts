const CHAIN_NAMES: Record<number, string> = {
  1: "Ethereum",
  10: "Optimism",
  100: "Gnosis",
  137: "Polygon",
  8453: "Base",
  42161: "Arbitrum",
  7777777: "Zora",
  11155111: "Sepolia",
  84532: "Base Sepolia",
};
/** A person-readable chain name ("Base", or "chain 12345" for one without a name here). */
export const chainName = (chainId: number): string => CHAIN_NAMES[chainId] ?? `chain ${chainId}`;
