"""Your katas: one folder per topic. Edit the stubs in katas/NN_topic/*.py until the tests pass."""
