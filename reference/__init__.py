"""The solutions, file for file the twins of katas/. The tests never import this directly: use --impl=reference."""
