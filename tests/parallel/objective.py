"""The objective both parallel tests differentiate: a learner-shaped masked next-token NLL plus
the scaled MoE aux loss. JAX is imported on call: the sharding test's child process must set
the device count before anything imports it."""


def masked_nll(model, ids, mask):
    import jax
    import jax.numpy as jnp

    logits, aux = model.logits_and_aux(ids, attention_mask=mask)
    logp = jax.nn.log_softmax(logits[:, :-1], axis=-1)
    nll = -jnp.take_along_axis(logp, ids[:, 1:, None], axis=-1)[..., 0]
    weight = mask[:, 1:].astype(jnp.float32)
    return jnp.sum(nll * weight) / jnp.sum(weight) + model.config.router_aux_loss_coef * aux
