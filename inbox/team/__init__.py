"""Team features: notifications (the bell, browser notifications, preferences), @mentions in
internal notes, and auto-assignment of new conversations per account."""
