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
