"""HTTP transport: thin FastAPI handlers over the domain. One OpenAPI document for all."""
