"""timebank: the double-entry ledger of a community time bank (时间银行)."""

__version__ = "0.1.0"
