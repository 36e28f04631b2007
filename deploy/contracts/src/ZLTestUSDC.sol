// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title ZLTestUSDC: a second deposit token with 6 decimals, for tests ONLY.
/// @notice Never deploy this where real value is meant: the owner can mint any
///         amount to anyone. It stands for a stablecoin with 6 decimals (USDC
///         and USDT on Ethereum) beside ZLTestToken's 18, so tests can show
///         that each token is credited with its own decimals and rate.
contract ZLTestUSDC is ERC20, Ownable {
    constructor() ERC20("Zeroloss Test USDC", "USDC") Ownable(msg.sender) {}

    /// @dev 6, not OpenZeppelin's default of 18: the point of this contract.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Owner-only faucet so tests can fund depositors.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
