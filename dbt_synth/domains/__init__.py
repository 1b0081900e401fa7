"""Differentially-private discovery of what values each column may take."""
