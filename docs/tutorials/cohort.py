# %% [markdown]
# # cohort

# %%
print(1)
