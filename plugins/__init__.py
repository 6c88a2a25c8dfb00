"""Built-in plugins: registered through the same entry points and hooks as third-party ones."""
