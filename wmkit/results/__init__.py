"""What is read from finished runs: groups of seeds, comparisons, the HTML report and the dream-
reality gap."""
