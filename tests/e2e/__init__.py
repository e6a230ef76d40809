"""End-to-end tests with the reference JavaScript clients (Node.js)."""
