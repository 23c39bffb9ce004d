"""Object states shared by the ownership table and its users."""

PENDING, READY, FAILED = 0, 1, 2
