"""What is read from finished runs: groups of seeds, comparisons and the HTML report."""
