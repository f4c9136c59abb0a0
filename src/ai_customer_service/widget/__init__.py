"""The web chat widget channel: sites, visitor tokens, the public widget API, widget.js and the demo."""
