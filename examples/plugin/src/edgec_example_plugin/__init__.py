"""Example edgec plugin (see README.md): importing it registers nothing by itself; edgec loads
each entry point declared in pyproject.toml."""
