"""The open API for commuters' apps."""
