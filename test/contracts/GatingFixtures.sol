// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Minimal token contracts the eligibility tests deploy on a local anvil. Only what the checks read.

contract TestERC20 {
    string public name;
    string public symbol;
    uint8 public decimals;
    mapping(address => uint256) public balanceOf;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function burn(address from, uint256 amount) external {
        balanceOf[from] -= amount;
    }
}

contract TestERC721 {
    string public name;
    mapping(uint256 => address) private owners;
    mapping(address => uint256) public balanceOf;

    constructor(string memory name_) {
        name = name_;
    }

    function mint(address to, uint256 tokenId) external {
        require(owners[tokenId] == address(0), "minted");
        owners[tokenId] = to;
        balanceOf[to] += 1;
    }

    function ownerOf(uint256 tokenId) external view returns (address) {
        address owner = owners[tokenId];
        require(owner != address(0), "ERC721: invalid token ID");
        return owner;
    }
}

contract TestERC1155 {
    mapping(uint256 => mapping(address => uint256)) private balances;

    function mint(address to, uint256 id, uint256 amount) external {
        balances[id][to] += amount;
    }

    function balanceOf(address account, uint256 id) external view returns (uint256) {
        return balances[id][account];
    }

    function balanceOfBatch(address[] calldata accounts, uint256[] calldata ids) external view returns (uint256[] memory out) {
        require(accounts.length == ids.length, "ERC1155: accounts and ids length mismatch");
        out = new uint256[](accounts.length);
        for (uint256 i = 0; i < accounts.length; i++) out[i] = balances[ids[i]][accounts[i]];
    }
}

/// The two functions of the POAP contract the checks use.
contract TestPoap {
    struct Token {
        uint256 tokenId;
        uint256 eventId;
    }
    mapping(address => Token[]) private tokens;
    uint256 private nextId = 1;

    function mint(address to, uint256 eventId) external {
        tokens[to].push(Token(nextId++, eventId));
    }

    function balanceOf(address owner) external view returns (uint256) {
        return tokens[owner].length;
    }

    function tokenDetailsOfOwnerByIndex(address owner, uint256 index) external view returns (uint256 tokenId, uint256 eventId) {
        require(index < tokens[owner].length, "index out of range");
        Token memory t = tokens[owner][index];
        return (t.tokenId, t.eventId);
    }
}

/// Reverts on every call.
contract Reverter {
    fallback() external {
        revert("always reverts");
    }
}

/// An EIP-1271 smart-contract wallet with one owner key: a signature is valid when the owner's key made it.
contract OwnedWallet {
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) return 0xffffffff;
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        address signer = ecrecover(hash, v, r, s);
        return signer != address(0) && signer == owner ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}

/// An EIP-1271 wallet that refuses every signature.
contract RefusingWallet {
    function isValidSignature(bytes32, bytes calldata) external pure returns (bytes4) {
        return 0xffffffff;
    }
}

/// Deploys OwnedWallets at CREATE2 addresses: what an EIP-6492 signature of a not-yet-deployed wallet calls.
contract OwnedWalletFactory {
    function deploy(address owner, bytes32 salt) external returns (address) {
        return address(new OwnedWallet{salt: salt}(owner));
    }

    function addressOf(address owner, bytes32 salt) external view returns (address) {
        bytes32 init = keccak256(abi.encodePacked(type(OwnedWallet).creationCode, abi.encode(owner)));
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, init)))));
    }
}
