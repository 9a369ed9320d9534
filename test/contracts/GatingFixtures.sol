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

/// delegate.xyz v2's registry as far as eligibility reads it (src/IDelegateRegistry.sol of delegatexyz/delegate-registry):
/// the five delegation types, their check functions for full delegations (rights 0) and getIncomingDelegations.
/// Tests put its code at the registry's real address with anvil_setCode.
contract TestDelegateRegistry {
    enum DelegationType {
        NONE,
        ALL,
        CONTRACT,
        ERC721,
        ERC20,
        ERC1155
    }

    struct Delegation {
        DelegationType type_;
        address to;
        address from;
        bytes32 rights;
        address contract_;
        uint256 tokenId;
        uint256 amount;
    }

    Delegation[] private delegations;

    function _set(Delegation memory d) private {
        for (uint256 i = 0; i < delegations.length; i++) {
            Delegation storage e = delegations[i];
            if (e.type_ == d.type_ && e.to == d.to && e.from == d.from && e.rights == d.rights && e.contract_ == d.contract_ && e.tokenId == d.tokenId) {
                e.amount = d.amount;
                if (d.amount == 0) e.type_ = DelegationType.NONE;
                return;
            }
        }
        if (d.amount > 0) delegations.push(d);
    }

    function delegateAll(address to, bytes32 rights, bool enable) external payable returns (bytes32) {
        _set(Delegation(DelegationType.ALL, to, msg.sender, rights, address(0), 0, enable ? 1 : 0));
        return 0;
    }

    function delegateContract(address to, address contract_, bytes32 rights, bool enable) external payable returns (bytes32) {
        _set(Delegation(DelegationType.CONTRACT, to, msg.sender, rights, contract_, 0, enable ? 1 : 0));
        return 0;
    }

    function delegateERC721(address to, address contract_, uint256 tokenId, bytes32 rights, bool enable) external payable returns (bytes32) {
        _set(Delegation(DelegationType.ERC721, to, msg.sender, rights, contract_, tokenId, enable ? 1 : 0));
        return 0;
    }

    function delegateERC20(address to, address contract_, bytes32 rights, uint256 amount) external payable returns (bytes32) {
        _set(Delegation(DelegationType.ERC20, to, msg.sender, rights, contract_, 0, amount));
        return 0;
    }

    function delegateERC1155(address to, address contract_, uint256 tokenId, bytes32 rights, uint256 amount) external payable returns (bytes32) {
        _set(Delegation(DelegationType.ERC1155, to, msg.sender, rights, contract_, tokenId, amount));
        return 0;
    }

    function _has(DelegationType t, address to, address from, bytes32 rights, address contract_, uint256 tokenId) private view returns (uint256) {
        for (uint256 i = 0; i < delegations.length; i++) {
            Delegation storage e = delegations[i];
            if (e.type_ == t && e.to == to && e.from == from && e.rights == rights && e.contract_ == contract_ && e.tokenId == tokenId) return e.amount;
        }
        return 0;
    }

    function checkDelegateForAll(address to, address from, bytes32 rights) public view returns (bool) {
        return _has(DelegationType.ALL, to, from, rights, address(0), 0) > 0;
    }

    function checkDelegateForContract(address to, address from, address contract_, bytes32 rights) public view returns (bool) {
        return checkDelegateForAll(to, from, rights) || _has(DelegationType.CONTRACT, to, from, rights, contract_, 0) > 0;
    }

    function checkDelegateForERC721(address to, address from, address contract_, uint256 tokenId, bytes32 rights) external view returns (bool) {
        return checkDelegateForContract(to, from, contract_, rights) || _has(DelegationType.ERC721, to, from, rights, contract_, tokenId) > 0;
    }

    function checkDelegateForERC20(address to, address from, address contract_, bytes32 rights) external view returns (uint256) {
        if (checkDelegateForContract(to, from, contract_, rights)) return type(uint256).max;
        return _has(DelegationType.ERC20, to, from, rights, contract_, 0);
    }

    function checkDelegateForERC1155(address to, address from, address contract_, uint256 tokenId, bytes32 rights) external view returns (uint256) {
        if (checkDelegateForContract(to, from, contract_, rights)) return type(uint256).max;
        return _has(DelegationType.ERC1155, to, from, rights, contract_, tokenId);
    }

    function getIncomingDelegations(address to) external view returns (Delegation[] memory out) {
        uint256 n = 0;
        for (uint256 i = 0; i < delegations.length; i++) if (delegations[i].to == to && delegations[i].type_ != DelegationType.NONE) n++;
        out = new Delegation[](n);
        n = 0;
        for (uint256 i = 0; i < delegations.length; i++) if (delegations[i].to == to && delegations[i].type_ != DelegationType.NONE) out[n++] = delegations[i];
    }
}

/// Coinbase's attestation indexer on Base, as eligibility reads it: the attestation uid per (recipient, schema).
contract TestCoinbaseIndexer {
    mapping(address => mapping(bytes32 => bytes32)) private uids;

    function setAttestationUid(address recipient, bytes32 schemaUid, bytes32 uid) external {
        uids[recipient][schemaUid] = uid;
    }

    function getAttestationUid(address recipient, bytes32 schemaUid) external view returns (bytes32) {
        return uids[recipient][schemaUid];
    }
}

/// The Ethereum Attestation Service's getAttestation (EAS Common.sol's Attestation), with a setter for tests.
contract TestEAS {
    struct Attestation {
        bytes32 uid;
        bytes32 schema;
        uint64 time;
        uint64 expirationTime;
        uint64 revocationTime;
        bytes32 refUID;
        address recipient;
        address attester;
        bool revocable;
        bytes data;
    }

    mapping(bytes32 => Attestation) private attestations;

    function put(Attestation calldata a) external {
        attestations[a.uid] = a;
    }

    function getAttestation(bytes32 uid) external view returns (Attestation memory) {
        return attestations[uid];
    }

    /// What the real contract answers too, and what eligibility must not trust: it ignores revocation.
    function isAttestationValid(bytes32 uid) external view returns (bool) {
        return attestations[uid].uid != 0;
    }
}
