"""DSL front end: text -> syntax tree (`parser`) -> checked kernel (`checker`)."""
