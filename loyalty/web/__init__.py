"""The back-office's faces: the pages' views, forms and filters, and the middleware, session
engine, context processor and health check they run with."""
