// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title ZLTestToken: a stand-in for USDT, for tests and the demo ONLY.
/// @notice Never deploy this where real value is meant: the owner can mint any
///         amount to anyone. Production watches the real USDT contract; this
///         token only gives the local chain (anvil) something that emits the
///         same ERC-20 Transfer events the deposit watcher listens for.
/// @dev 18 decimals, as USDT has on BSC (BEP-20), not 6 as on Ethereum, so
///      amounts in tests have the scale the pipeline will meet on BSC.
contract ZLTestToken is ERC20, Ownable {
    constructor() ERC20("Zeroloss Test USDT", "USDT") Ownable(msg.sender) {}

    /// @dev Stated explicitly (it is also OpenZeppelin's default) because the
    ///      pipeline's amount parsing depends on it.
    function decimals() public pure override returns (uint8) {
        return 18;
    }

    /// @notice Owner-only faucet so tests and the demo can fund depositors.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
