"""The lab: tools that measure and explain the system (load generator, web app, experiments, simulator,
demo, overhead tool, evaluation, training). The system never imports the lab. See :doc:`/development/architecture`.
"""
