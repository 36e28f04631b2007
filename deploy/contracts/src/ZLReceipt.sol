// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title ZLReceipt: one NFT receipt per detected USDT deposit.
/// @notice The minter derives every token id as uint256(keccak256(deposit_id)).
///         Because an ERC-721 id can exist only once, the contract itself
///         refuses a second receipt for the same deposit: a retried or
///         duplicated mint job (crash after send, replayed queue message, two
///         workers racing) can never produce two receipts, whatever the
///         off-chain bookkeeping believes.
contract ZLReceipt is ERC721, AccessControl {
    /// @notice Holders may mint receipts (the pipeline's minter wallet).
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @dev Per-token metadata URI (e.g. ipfs://<cid>), set once at mint.
    ///      Stored per token rather than base URI + id because each receipt's
    ///      metadata is content-addressed and cannot be derived from the id.
    mapping(uint256 tokenId => string) private _tokenURIs;

    /// @notice Emitted for every receipt actually minted, by mint and mintBatch.
    ///         The off-chain side confirms a deposit's receipt from this event.
    event ReceiptMinted(uint256 indexed tokenId, address indexed to, string uri);

    /// @notice Emitted by mintBatch for an id that already exists and was left
    ///         untouched (its owner and uri are unchanged).
    event ReceiptSkipped(uint256 indexed tokenId);

    /// @notice mintBatch was given arrays of different lengths.
    error ReceiptBatchLengthMismatch(uint256 toLength, uint256 idsLength, uint256 urisLength);

    constructor(string memory name_, string memory symbol_, address admin) ERC721(name_, symbol_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Mints receipt `tokenId` to `to` with metadata `uri`.
    /// @dev Reverts if `tokenId` already exists, with OpenZeppelin's
    ///      ERC721InvalidSender(address(0)) custom error (raised by _mint), so a
    ///      single duplicate mint fails loudly. A caller without MINTER_ROLE gets
    ///      AccessControlUnauthorizedAccount(caller, MINTER_ROLE); to == 0 gets
    ///      ERC721InvalidReceiver(address(0)).
    ///      _mint rather than _safeMint: a receipt must not be blockable by a
    ///      depositor contract that does not implement onERC721Received, and no
    ///      external call happens during minting.
    function mint(address to, uint256 tokenId, string calldata uri) external onlyRole(MINTER_ROLE) {
        _mintReceipt(to, tokenId, uri);
    }

    /// @notice Mints many receipts in one transaction; ids that already exist
    ///         are SKIPPED (ReceiptSkipped) instead of reverting the batch.
    /// @dev Skipping makes a retried batch safe: if a previous attempt was mined
    ///      but its confirmation was lost, resending the same batch mints only
    ///      the missing receipts and the ReceiptMinted events say which. A
    ///      zero-address recipient still reverts the whole batch
    ///      (ERC721InvalidReceiver), since that is a caller bug, not a retry.
    function mintBatch(address[] calldata to, uint256[] calldata ids, string[] calldata uris)
        external
        onlyRole(MINTER_ROLE)
    {
        if (to.length != ids.length || ids.length != uris.length) {
            revert ReceiptBatchLengthMismatch(to.length, ids.length, uris.length);
        }
        for (uint256 i = 0; i < ids.length; ++i) {
            if (_ownerOf(ids[i]) != address(0)) {
                emit ReceiptSkipped(ids[i]);
            } else {
                _mintReceipt(to[i], ids[i], uris[i]);
            }
        }
    }

    /// @notice Whether receipt `tokenId` has been minted.
    function exists(uint256 tokenId) external view returns (bool) {
        return _ownerOf(tokenId) != address(0);
    }

    /// @notice The uri stored at mint. Reverts with
    ///         ERC721NonexistentToken(tokenId) for an id never minted.
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        return _tokenURIs[tokenId];
    }

    /// @dev Both bases implement ERC-165; advertise the union of their interfaces.
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    function _mintReceipt(address to, uint256 tokenId, string calldata uri) private {
        _mint(to, tokenId); // reverts ERC721InvalidSender(address(0)) if tokenId exists
        _tokenURIs[tokenId] = uri;
        emit ReceiptMinted(tokenId, to, uri);
    }
}
