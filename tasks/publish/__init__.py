"""Publishers: Teams messages and Confluence pages."""
