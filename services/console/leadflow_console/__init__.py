"""leadflow console: the ops dashboard and its JSON API."""
