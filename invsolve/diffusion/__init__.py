"""Score-based diffusion priors on whole images: the forward process (:mod:`.sde`), the score networks
(:mod:`.networks`), training (:mod:`.training`), unconditional sampling (:mod:`.sampling`) and the posterior
samplers dps, diffpir and annealed-langevin (:mod:`.samplers`).  The prior itself, registered as
``diffusion``, is :class:`invsolve.priors.diffusion.DiffusionPrior`."""
