"""Distribution: signed packages (``trust``), release archives (``archive``), publishing a
repository (``publish``) and the device's store with atomic updates (``store``)."""
