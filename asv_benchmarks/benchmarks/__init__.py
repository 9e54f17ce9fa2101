"""fastlstm's asv suite. It uses only fastlstm's public API (models, layers, optimizer, util,
`python -m fastlstm.warmup`), so it also runs against commits older than the suite."""
