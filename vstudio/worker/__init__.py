"""The render node (``vstudio worker``): talks to the manager over HTTP only."""
