"""Payment providers: the interface billing's services use, and its implementations."""
