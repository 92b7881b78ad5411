"""gunicorn's settings for this project, read by gunicorn from the directory it starts in.

URLs: by default gunicorn refuses a request line over 4094 bytes with its own HTML page
("414 URI Too Long"), before the application sees it. With a higher limit a URL over 4 KB
reaches the product, which answers 414 itself, with the API's error envelope on the API
(loyalty.web.middleware). A proxy in front has its own limit (nginx: 8 KB by default).
"""

limit_request_line = 8190
