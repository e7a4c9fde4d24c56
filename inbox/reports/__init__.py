"""Reports: facts kept as conversations happen (facts.py), the arithmetic on them (metrics.py),
what a report reads (figures.py) and the page (views.py, urls.py)."""
