"""What runs inside pytest, for the kata tests: the plugin, the loader that isolates a learner's
file, the laws every kata call keeps (inputs, torch's global state), the helpers the test files
use (testing), the time limit, and the plain-words explanations of torch's errors.

May import coach.core only. Learner commands and graders start pytest with this plugin; nothing
here knows about them.
"""
