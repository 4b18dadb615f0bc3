"""Getting a model: cache folder, the registry of zoo aliases, downloads, and resolution to an Engine."""
