"""Audio features at 25 per second (paper Sec. 3.2): `mel` (log-mel front end), `encoder`
(the learned `MelEncoder` and the Wav2Vec2 / HuBERT wrapper `PretrainedSpeechEncoder`)."""
