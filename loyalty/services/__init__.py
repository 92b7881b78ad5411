"""The engine's business actions. Each public function is one durable transaction."""
