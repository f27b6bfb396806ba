"""Demo business generator."""
