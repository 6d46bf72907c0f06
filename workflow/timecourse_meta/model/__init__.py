"""The model stage: Bayesian hierarchical time-course models (PyMC, sampled with nutpie) for one outcome and study
set. Modules in the order of a fit: ``model_data`` (rows that enter the likelihood; ``arm_rows``, ``arms``,
``binary_data``), ``priors``, ``build`` (PyMC model; ``blocks`` and ``likelihood``: the marginal likelihood by
study block), ``sample`` (nutpie, seeds), ``compare`` (PSIS-LOO and the time-course rule), ``posterior`` (draws ->
quantities; ``latent``: each study's latent layer), ``summary`` (summary rows; ``evidence`` labels),
``diagnostics`` (the convergence gate); ``fit`` runs them for one outcome and writes the files.

Continuous outcomes (analysis scale from the outcome dictionary; see ``model_data``). Study i, visit grid
t_0 = 0 < t_1 < ... < t_K, likelihood rows j (arm-level means of the intervention arm):

    absolute rows   ybar_j = beta_{i,c(j)} + delta_{i,t(j)} + e_j        (c(j): the row's cohort)
    change rows     d_j    =                 delta_{i,t(j)} + e_j        (delta_{i,0} = 0)
    e ~ MvNormal(0, Sigma(rho_w)),  Sigma_jk = corr_w(t_j, t_k) s_j s_k min(n_j, n_k) / (n_j n_k) within a
        study's absolute block or its change block, 0 otherwise (model_data: nested-subset rule);
        corr_w = rho_w for different visits (CS) or rho_w ** (|t_j - t_k| / lag_months) (AR(1)), 1 at the
        same visit; rho_w ~ Beta(a_w, b_w), or fixed (``within_study_correlation.fixed``: not sampled)
    delta_{i,k} = Delta(t_k) + u_{i,k},  u_i ~ MvNormal(0, tau^2 R(rho_b)),
        R = AR(1) rho_b ** (|t - t'| / lag_months) or CS; rho_b ~ Beta(a_b, b_b); tau ~ heterogeneity prior
        (half_normal | half_cauchy | half_student_t(nu) | exponential, scale ``tau_scale``)
    beta_{i,c} ~ N(observed baseline mean of (i, c), baseline_sd^2)   (a weak prior on a nuisance level)
    Delta = H theta, theta ~ N(0, I)  (the time courses below are all linear-Gaussian given ET50)

Time course Delta(t) (``settings["time_course"]``):
    random_walk       Delta(t) = J + B(t): an early response level J ~ N(0, delta_sd^2) plus a Brownian
                      motion B(0) = 0, B(t) - B(t') ~ N(0, step_sd^2 |t - t'| / L) (L =
                      ``random_walk_reference_months``, default 3: step_sd is the SD of the drift of Delta over
                      three months). Defined in continuous time, so the prior of Delta at a visit does not
                      depend on which other visits are on the grid, and visits at 0.92 and 1 month are nearly
                      tied; prior Var Delta(t) = delta_sd^2 + step_sd^2 t / L.
    piecewise_linear  Delta(t) = a min(t, kappa)/kappa + c max(t - kappa, 0)/(t_K - kappa),  a, c ~ N(0,
                      delta_sd^2) (Delta at the knot; change from knot to the last visit);
                      kappa = ``piecewise_knot_months`` (default 3)
    emax              Delta(t) = E t / (ET50 + t),  E ~ N(0, delta_sd^2),
                      ET50 ~ LogNormal(log(``emax_et50_median_months`` = 2), 1)
    independent       (one study: no pooling, no tau) Delta(t_k) ~ N(0, delta_sd^2) independently.

Computation: every layer but the hyperparameters is Gaussian and linear, so it is integrated out
analytically (as bayesmeta does for mu, and as rma.mv's marginal likelihood does):
    y ~ MvNormal(level_mean, V),  V = Sigma(rho_w) + tau^2 [between_mask o R(rho_b)] + baseline_sd^2
        level_mask + Z H H' Z'
NUTS (nutpie) samples only tau, rho_between, rho_within (and ET50): no funnel, no divergences with 1-4
studies. V is never formed: all its terms but Z H H' Z' lie within one study, so V = D + U U' (D
block-diagonal by study, U = Z H with p columns) and the log density takes a batched Cholesky of the study
blocks and the Woodbury identity / determinant lemma for U (``blocks``, ``likelihood``): memory and time
linear in the rows. For every posterior draw, gamma = (theta, beta, u) is then drawn from its exact Gaussian
conditional (``posterior.add_latent_draws``: theta | y, then each study's (beta_i, u_i) | theta, y_i), giving
``delta`` (Delta(t)), ``study_delta`` (the shrunken study
changes delta_{i,k}) and ``baseline``. A new study's change (prediction interval) is Delta + u_new,
u_new ~ MvNormal(0, tau^2 R), drawn with a fixed seed (``predictions`` group). Posterior predictive: y_rep
~ MvNormal(beta + delta, Sigma) given the latent draws.

Binary outcomes (events/total of the intervention arm, one follow-up duration at a time, see ``model_data``): only a
duration that >= 2 studies report is modelled,
    events_j ~ Binomial(total_j, logit^-1(mu_{b(j)} + tau z_j)),  mu_b ~ N(0, mu_sd^2), z_j ~ N(0, 1)
    (non-centred; tau shared across durations; study effects independent across durations); defaults
    ``priors.DEFAULT_BINARY_PRIOR`` (weakly informative for rare events). A duration one study reports, and an
    outcome without any shared duration, is not modelled: the study's events/total with its exact
    (Clopper-Pearson) interval is reported ("study's own estimate"). One study of a continuous outcome is
    likewise its own change with a t interval, not sampled.

Which number is what: the summary's ``evidence`` column (``evidence.Evidence``) and its ``label`` wording.

Pointwise log-likelihood (PSIS-LOO): the marginal MvNormal does not factorise, so ``log_likelihood`` holds
log p(y_j | y_-j, hyperparameters), the leave-one-out conditional densities of Buerkner, Gabry & Vehtari
(2021) (log p = -log(2 pi)/2 + log(g_jj)/2 - c_j^2 / (2 g_jj), g = V^-1, c = g (y - m)).
"""
