"""PSD2 statistics of the dedicated interface: what the server records while it serves, and the
quarterly report built from it (RTS 2018/389 Art. 32(4); EBA/GL/2018/07 guidelines 2.2–2.4
and 3). See docs/operations.md#psd2-statistics."""
