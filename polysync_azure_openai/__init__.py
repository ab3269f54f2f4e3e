"""Polysync job types for Azure OpenAI: Chat Completion, Embedding and Batch Job.

Importing the package is cheap on purpose: the host imports every plugin in every worker at
start-up. requests, azure-identity, the emulator and the CLI load only when first needed.
"""

__version__ = "0.1.0"
