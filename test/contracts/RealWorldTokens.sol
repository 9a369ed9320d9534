// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Token contracts shaped like ones people hold on mainnet, quirks included, for the checks create makes
/// (test/eligibility/contract-quirks.test.ts). Only what those checks read, plus `mint`.

/// MKR and SAI (DSToken): `symbol` and `name` are bytes32, `decimals` a uint256.
contract DSTokenLike {
    bytes32 public symbol;
    bytes32 public name;
    uint256 public decimals = 18;
    mapping(address => uint256) public balanceOf;

    constructor(bytes32 symbol_, bytes32 name_) {
        symbol = symbol_;
        name = name_;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }
}

/// EIP-20 without its OPTIONAL `name()` and `symbol()`: calls to them revert (no fallback).
contract NamelessToken {
    uint8 public decimals;
    mapping(address => uint256) public balanceOf;

    constructor(uint8 decimals_) {
        decimals = decimals_;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }
}

/// `name()`/`symbol()` answer whatever bytes it was given as a string (empty, control characters, invalid
/// UTF-8), and `decimals()` any uint256 (1000, say), as a token with careless metadata does.
contract RawMetadataToken {
    bytes private name_;
    bytes private symbol_;
    uint256 public decimals;
    mapping(address => uint256) public balanceOf;

    constructor(bytes memory n, bytes memory s, uint256 d) {
        name_ = n;
        symbol_ = s;
        decimals = d;
    }

    function name() external view returns (string memory) {
        return string(name_);
    }

    function symbol() external view returns (string memory) {
        return string(symbol_);
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }
}

/// A pre-0.8 token: no `name()`/`symbol()`, and a fallback that fails with the INVALID opcode, as `assert(false)`
/// compiled before Solidity 0.8 does (nodes report it as an EVM error, not a revert).
contract InvalidOpcodeFallbackToken {
    uint8 public constant decimals = 8;
    mapping(address => uint256) public balanceOf;

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    fallback() external {
        assembly {
            invalid()
        }
    }
}

/// A proxy whose implementation slot points at an address without code: the delegatecall succeeds, so every
/// call answers with no data at all (no revert).
contract ProxyToNothing {
    // EIP-1967 implementation slot.
    bytes32 private constant IMPLEMENTATION_SLOT = 0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc;

    constructor(address implementation) {
        assembly {
            sstore(IMPLEMENTATION_SLOT, implementation)
        }
    }

    fallback() external {
        assembly {
            let impl := sload(IMPLEMENTATION_SLOT)
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), impl, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch ok
            case 0 {
                revert(0, returndatasize())
            }
            default {
                return(0, returndatasize())
            }
        }
    }
}

/// Answers every call with 16 bytes, less than one ABI word.
contract ShortAnswers {
    fallback() external {
        assembly {
            mstore(0, 0x2a)
            return(16, 16)
        }
    }
}

/// A plausible ERC-20 (string metadata, 18 decimals) whose `balanceOf` answers 31 bytes.
contract BrokenBalanceToken {
    string public constant name = "Broken Balance";
    string public constant symbol = "BRKN";
    uint8 public constant decimals = 18;

    function balanceOf(address) external pure returns (uint256) {
        assembly {
            mstore(0, 1)
            return(0, 31)
        }
    }
}

/// ERC-1155 with `balanceOf(address,uint256)` only: no ERC-165, no `balanceOf(address)`.
contract BareERC1155 {
    mapping(uint256 => mapping(address => uint256)) private balances;

    function mint(address to, uint256 id, uint256 amount) external {
        balances[id][to] += amount;
    }

    function balanceOf(address account, uint256 id) external view returns (uint256) {
        require(account != address(0), "ERC1155: address zero is not a valid owner");
        return balances[id][account];
    }
}

/// ERC-721 without Enumerable or metadata, OpenZeppelin-style reverts: `ownerOf` of a token nobody owns and
/// `balanceOf(address(0))`.
contract BareERC721 {
    mapping(uint256 => address) private owners;
    mapping(address => uint256) private balances;

    function mint(address to, uint256 tokenId) external {
        require(owners[tokenId] == address(0), "minted");
        owners[tokenId] = to;
        balances[to] += 1;
    }

    function balanceOf(address owner) external view returns (uint256) {
        require(owner != address(0), "ERC721: address zero is not a valid owner");
        return balances[owner];
    }

    function ownerOf(uint256 tokenId) external view returns (address) {
        address owner = owners[tokenId];
        require(owner != address(0), "ERC721: invalid token ID");
        return owner;
    }
}

/// A token whose every read asks the caller to fetch a URL it names (EIP-3668 OffchainLookup): a caller that
/// follows it makes requests the contract's author chooses (server-side request forgery).
contract OffchainLookupToken {
    error OffchainLookup(address sender, string[] urls, bytes callData, bytes4 callbackFunction, bytes extraData);

    string private url;

    constructor(string memory url_) {
        url = url_;
    }

    function lookup() private view {
        string[] memory urls = new string[](1);
        urls[0] = url;
        revert OffchainLookup(address(this), urls, msg.data, this.answer.selector, "");
    }

    function answer(bytes calldata, bytes calldata) external pure returns (uint256) {
        return 1;
    }

    function balanceOf(address) external view returns (uint256) {
        lookup();
    }

    function decimals() external view returns (uint8) {
        lookup();
    }
}
