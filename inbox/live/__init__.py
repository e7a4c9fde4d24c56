"""Live team features: who is online (presence), who has a conversation open or is typing in it,
and events pushed to open tabs (publish, server-sent events). Nothing here touches the database:
the state is short-lived and kept in Redis, or in this process on the embedded default."""
