-- A spike and a dip on one product: an outage on one product barely moves the overall volume
-- and sentiment when the rest of the traffic is busy (other products' launches and praise
-- waves are in the same baseline), but stands far out of that product's own history.
INSERT INTO alert_rules (name, kind, dimension, window_minutes, threshold, min_volume, severity) VALUES
    ('Volume spike on a product', 'volume_spike', 'product', 5, 0, 20, 'warning'),
    ('Sentiment dip on a product', 'sentiment_dip', 'product', 5, 0, 20, 'warning');
