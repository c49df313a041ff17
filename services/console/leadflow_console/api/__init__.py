"""console's HTTP routes: the dashboard page and its JSON API."""
