"""Microsoft Teams: neutral messages, two card renderers (legacy MessageCard, Workflows Adaptive Card), a sender."""
