-- What a key may send (platforms, products, id prefixes); null: anything.
ALTER TABLE api_keys ADD COLUMN scope jsonb;
