"""The studio web page (server-rendered, served by ``vstudio serve``)."""
