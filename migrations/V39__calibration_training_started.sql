-- When the last sentiment calibration training began: one begins at most once every
-- `analyzer.calibration_train_gap_ms`, however fast sentiment labels are given and undone (each
-- training reads up to `analyzer.calibration_labels` posts again through the analyzer pool).
ALTER TABLE sentiment_calibration_state ADD COLUMN training_started TIMESTAMPTZ;
