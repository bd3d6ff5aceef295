"""Shared by every Lumi process: settings, Redis key names, client factories, logging."""
