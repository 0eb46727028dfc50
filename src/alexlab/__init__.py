"""alexlab: every design choice of AlexNet (Krizhevsky, Sutskever, Hinton, 2012) as a config switch."""
