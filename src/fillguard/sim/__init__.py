"""An Alpaca-compatible paper broker with fault injection, for tests and offline bots."""
